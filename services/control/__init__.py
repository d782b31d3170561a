"""Control: the command lifecycle, control plans and VPP dispatch (see the control issue)."""
