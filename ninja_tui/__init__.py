"""What people and scripts touch: the command line (and soon the Textual app). No agent logic."""
