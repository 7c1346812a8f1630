"""preflight: staged, deadline-bound SSH/SFTP reachability checks for CI."""

__version__ = "0.1.0"
