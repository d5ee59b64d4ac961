"""The web console: server-rendered pages for operators, duty officers and technicians."""
