"""The registry's write side, one module per entity, shared by the CLI, the API and the web.

Every write validates first, then changes the registry and its audit row in the caller's
transaction, and hands the before/after state to ``provisioner.effects`` (RADIUS rows,
router syncs, live sessions, the "other" adapter). Helpers flush, never commit.
"""

from provisioner.registry.common import count, get_by_name
from provisioner.registry.customers import (
    allocate_address,
    assign_prefix,
    create_customer,
    delete_customer,
    update_customer,
    uses_prefixes,
)
from provisioner.registry.masters import (
    create_master_package,
    delete_master_package,
    update_master_package,
)
from provisioner.registry.packages import create_package, delete_package, update_package
from provisioner.registry.resellers import (
    assign_package,
    create_reseller,
    delete_reseller,
    reseller_price,
    unassign_package,
    update_reseller,
)
from provisioner.registry.routers import create_router, delete_router, update_router

__all__ = [
    "allocate_address", "assign_package", "assign_prefix", "count", "create_customer",
    "create_master_package", "create_package", "create_reseller", "create_router",
    "delete_customer", "delete_master_package", "delete_package", "delete_reseller",
    "delete_router", "get_by_name", "reseller_price", "unassign_package", "update_customer",
    "update_master_package", "update_package", "update_reseller", "update_router",
    "uses_prefixes",
]  # fmt: skip
