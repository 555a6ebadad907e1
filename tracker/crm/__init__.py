"""The CRM add-on: contacts, segments, templates, the mailer and mailing rules.

Free of Flask and Dash: the CLI, the dashboard and the HTTP API all call these functions with a
``Runtime`` (or its parts), so there is one implementation of each operation.
"""
