"""Law-firm referrals: the package, its signed delivery, and the firm's signed callbacks.

``package`` builds what a firm needs to sue (account, Reg F itemization, the
hash-chained history with its seal, the debtor); ``signing`` is the
``Arrears-Signature`` HMAC both ways; ``adapter`` delivers referrals through the
outbox; ``callbacks`` applies the firm's status updates to the ledger once.
"""

from __future__ import annotations

from adapters.lawfirm.adapter import LawFirmAdapter, lawfirm_adapters
from adapters.lawfirm.callbacks import LawFirmCallbacks, StatusUpdate
from adapters.lawfirm.package import ReferralPackage, build_package
from adapters.signing import HEADER, InvalidSignature, StaleSignature, sign, verify

__all__ = [
    "HEADER",
    "InvalidSignature",
    "LawFirmAdapter",
    "LawFirmCallbacks",
    "ReferralPackage",
    "StaleSignature",
    "StatusUpdate",
    "build_package",
    "lawfirm_adapters",
    "sign",
    "verify",
]
