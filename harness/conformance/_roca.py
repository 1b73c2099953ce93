"""The ROCA fingerprint (CVE-2017-15361), tested on a modulus itself, not by firmware version.

Nemec et al., "The Return of Coppersmith's Attack: Practical Factorization of Widely Used
RSA Moduli", ACM CCS 2017, §2.3: Infineon's RSALib builds each prime as
p = k*M + (65537^a mod M), M a primorial, so for every small prime r dividing M the
modulus N = p*q mod r lies in the multiplicative subgroup of Z_r* that 65537 generates.
A random modulus passes that test for all the listed primes with probability near 2^-154;
their detector (crocs-muni/roca) tests exactly these primes.
"""

from __future__ import annotations

from functools import cache

GENERATOR = 65537
# The small primes of the published detector (3 to 167).
FINGERPRINT_PRIMES: tuple[int, ...] = (
    3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79, 83, 89,
    97, 101, 103, 107, 109, 113, 127, 131, 137, 139, 149, 151, 157, 163, 167,
)  # fmt: skip


@cache
def _subgroup(prime: int) -> frozenset[int]:
    """The powers of 65537 modulo `prime`."""
    members: set[int] = set()
    value = 1
    while value not in members:
        members.add(value)
        value = value * GENERATOR % prime
    return frozenset(members)


def roca_fingerprint(modulus: int) -> bool:
    """True when the RSA modulus has the structure of RSALib's vulnerable keys."""
    if modulus <= 1:
        raise ValueError("an RSA modulus is an integer greater than 1")
    return all(modulus % prime in _subgroup(prime) for prime in FINGERPRINT_PRIMES)
