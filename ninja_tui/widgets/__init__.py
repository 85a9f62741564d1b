"""Reusable widgets of the app: each renders history rows and events, none talks to agents."""
