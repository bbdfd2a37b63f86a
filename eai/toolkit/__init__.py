"""Everything after conversion: the Clip type, dataset I/O, canonical skeleton math, ..."""
