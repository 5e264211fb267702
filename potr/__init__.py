"""The composition root: the ``potr`` CLI and the demo launcher — the only package that
imports all the others."""
