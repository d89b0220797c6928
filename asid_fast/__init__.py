"""asid_fast: fast, exact ASID super-resolution."""
