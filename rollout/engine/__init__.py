"""The pure decision core: transition table, strategies, judges. No I/O, no wall clock."""
