"""What the kit is made of, each declared once: every parameter (`parameters`) and each
notebook's parameters cell (`cells`), generated from those declarations. The probes declare
their own catalogue entries beside their code (`irkit.probes`)."""
