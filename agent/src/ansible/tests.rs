//! Differential tests: each module against real Ansible (`ansible-core` in the project venv).
