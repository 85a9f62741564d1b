"""Full-screen views the app pushes over its main screen (history search, settings): each one
returns its result through `dismiss`, so the app decides what to do with it."""
