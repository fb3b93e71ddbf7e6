"""CSV exports in, re-import files out: a connector for teams without API access to their CRM."""

from connectors.files.config import DEFAULT_COLUMNS, DEFAULT_FIELD_NAMES, DEFAULT_FILES, FilesConfig
from connectors.files.connector import TASK_COLUMNS, FilesConnector

__all__ = [
    "DEFAULT_COLUMNS",
    "DEFAULT_FIELD_NAMES",
    "DEFAULT_FILES",
    "TASK_COLUMNS",
    "FilesConfig",
    "FilesConnector",
]
