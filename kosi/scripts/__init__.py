"""User scripts (mkosi.configure, mkosi.sync, mkosi.prepare, mkosi.build, ...): finding them,
their environment, the helper commands on their $PATH, and running them."""
