"""Pure mapping of registry snapshots to desired RouterOS objects and RADIUS rows."""
