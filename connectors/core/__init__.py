"""The small core every connector and the application depend on. Imports nothing else of ours."""
