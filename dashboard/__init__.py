"""odnos dashboard: a Dash app mounted on the collector's Flask server, behind a login."""
