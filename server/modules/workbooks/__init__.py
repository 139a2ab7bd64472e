"""The Excel plan workbook: template, import (workbook → plan document), export."""
