"""The tools tree: the programs kosi runs, from a tree newer than the host's when needed.

command.py runs a program with a tree's /usr (a leaf, for low-level code); host.py says
what the host's own tools lack; tree.py decides which tree to use and with which packages;
building it is kosi/verbs/build.py's, next to the build verb.
"""
