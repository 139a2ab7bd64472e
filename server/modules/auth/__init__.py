"""Authentication and authorisation: principals, tokens, the permission table."""

from server.modules.auth.dependencies import Principal, current_principal, require, same_tenant
from server.modules.auth.permissions import PERMISSIONS, Role

__all__ = ["PERMISSIONS", "Principal", "Role", "current_principal", "require", "same_tenant"]
