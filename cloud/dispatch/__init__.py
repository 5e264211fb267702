"""Dispatch: work orders for field technicians (MOSIEs), issue 17."""
