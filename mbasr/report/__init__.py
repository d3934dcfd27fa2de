"""The report: figures, tables and pages of the Quarto site, and notebooks made fit to publish."""
