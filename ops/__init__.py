"""Day-2 commands for a running stack: status, ps, logs, manage, shell, exec (python -m ops)."""
