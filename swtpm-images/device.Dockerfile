# A device as a task: swtpm, the TSS and the harness, running one device's life from its plan
# (`harness device run`) against a server URL. Docker Swarm runs it as a replicated job's task,
# Kubernetes as an Indexed Job's pod (see the README, "Devices as tasks").
#   scripts/docker-engine.sh start --swarm     builds it on a private engine (no registry), or by hand:
#   pip wheel -w CTX/wheels . && docker build --network host \
#     -f swtpm-images/device.Dockerfile -t enrollment-harness/device:latest CTX
# The context CTX holds wheels/: the harness and its dependencies, built where pip reaches an
# index, so the build itself needs none. BASE is the debootstrap base of swtpm-images/Dockerfile
# (with a registry, --build-arg BASE=debian:bookworm-slim).
ARG BASE=enrollment-harness/debian:bookworm-minbase
FROM ${BASE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends swtpm python3 python3-venv ca-certificates \
      libtss2-esys-3.0.2-0 libtss2-fapi1 libtss2-mu0 libtss2-rc0 libtss2-sys1 \
      libtss2-tctildr0 libtss2-tcti-swtpm0 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /device --create-home device
COPY wheels /wheels
RUN python3 -m venv /opt/harness \
 && /opt/harness/bin/pip install --quiet --no-index --find-links /wheels enrollment-attestation-harness \
 && rm -rf /wheels /root/.cache
USER 10001
WORKDIR /device
# Short: swtpm's unix socket paths must fit in 108 bytes.
ENV HARNESS_TMPDIR=/tmp PATH=/opt/harness/bin:/usr/sbin:/usr/bin:/sbin:/bin PYTHONUNBUFFERED=1
LABEL org.opencontainers.image.title="a device of the enrollment attestation harness"
ENTRYPOINT ["harness", "device", "run"]
