"""Local stand-ins for the parts of AWS that the emulator does not run (see design.md section 7)."""
