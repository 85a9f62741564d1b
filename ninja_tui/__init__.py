"""What people and scripts touch: the Textual app, the command line (one lazy module per
command) and notifications. Presentation only: no agent logic."""
