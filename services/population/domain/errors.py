"""The one error the domain validators raise.

It is the common `InvalidInput` (a ValueError too), so a rule broken deep in the domain
reaches an RPC caller as the same error type, naming the field, with no translation.
"""

from gridwork_common.errors import InvalidInput as InvalidField

__all__ = ["InvalidField"]
