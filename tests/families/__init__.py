"""Families defined outside lvm, against its abstract base only (lvm._family)."""
