"""The order service: places orders (`POST /orders`) and decides them from the saga's outcomes."""
