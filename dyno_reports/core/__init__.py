"""The core: errors, configuration (read lazily from the environment), periods and tenant calendars."""
