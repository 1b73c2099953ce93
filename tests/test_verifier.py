from harness.verifier import evaluate, parse_public, split_claim
from harness.verifier._tpm import parse_attest


def test_explore(recorded) -> None:
    e = recorded.evidence
    v = evaluate(e, recorded.policy, now=recorded.now, nonce=recorded.nonce, registered_keys=recorded.registered)
    print(v.status, v.decision)
    for c in v.checks:
        print(c)
    print(e.enrollment_version, e.os_version, e.device_model, e.tpm_manufacturer, e.client_status, e.client_hresult)
    c = split_claim(e.aik_claim)
    print(len(e.aik_claim), c.attest[:12].hex(), c.signature[:8].hex(), len(c.signature))
    a = parse_attest(c.attest)
    print(hex(a.magic), a.type, bytes(a.extraData).hex())
    print(parse_public(e.aik_pub).crypto_key())
    print(parse_public(e.mdm_pub).crypto_key(), parse_public(e.aad_pub).crypto_key())
    print(recorded.now, recorded.policy.token_keys, recorded.policy.token_issuer)
    import jwt
    print(jwt.get_unverified_header(e.token), jwt.decode(e.token, options={"verify_signature": False}))
    assert 0
