"""Assets: installations, devices and their credentials. The gateway authenticates devices against `credentials`."""
