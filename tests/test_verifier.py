import dataclasses, traceback, collections
from harness.verifier import evaluate


def test_explore(recorded) -> None:
    e = recorded.evidence
    def ev(x):
        return evaluate(x, recorded.policy, now=recorded.now, nonce=recorded.nonce, registered_keys=recorded.registered)
    where = collections.Counter()
    blob = e.aik_cert
    for mask in (0x01, 0xFF, 0x80):
        for i in range(len(blob)):
            b = bytearray(blob); b[i] ^= mask
            try:
                ev(dataclasses.replace(e, aik_cert=bytes(b)))
            except Exception as exc:
                tb = traceback.extract_tb(exc.__traceback__)
                where[(type(exc).__name__, tuple(f"{f.name}:{f.lineno}" for f in tb[-3:]))] += 1
    for k, n in where.items():
        print(n, k)
    from harness.verifier._certs import load_certificate
    c = load_certificate(e.aik_cert)
    print(c.serial_number, len(e.aik_cert))
    assert 0
