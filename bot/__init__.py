"""vps-backup-bot: manage VPS.org server backups from Slack."""

__version__ = "0.1.0"
