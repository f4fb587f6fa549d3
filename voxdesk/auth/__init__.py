"""Users, roles, sessions and the audit log of sensitive reads."""

from voxdesk.auth.roles import ROLES, Role
from voxdesk.auth.service import AuthService, Principal

__all__ = ["ROLES", "AuthService", "Principal", "Role"]
