"""The read side: every read the faces (API, CLI, web) make, one module per entity.

Each function takes the caller (``Principal``) and returns typed models (``read.models``);
who may see what is ``access``'s rule, applied here and nowhere else. The CLI reads as
the admin principal ``ADMIN``.
"""

from provisioner.auth import Principal

ADMIN = Principal("admin", name="cli")

__all__ = ["ADMIN"]
