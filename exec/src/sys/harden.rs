//! Process hardening applied in a command's process between fork and execve (OWNER: helper Y).
