"""Cross-layer Fed-MARL edge agents (seed paper 1, FERMI-6G; DESIGN section 9)."""
