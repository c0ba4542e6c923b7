"""The SIP endpoint: rfcvoip (pyVoIP's maintained fork) plus the project's dialog layer and fixes."""

from telephony.sip.phone import EmployaiPhone

__all__ = ["EmployaiPhone"]
