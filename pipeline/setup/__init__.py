"""What a real org needs before m3sync can run against it, generated from the mappings."""
