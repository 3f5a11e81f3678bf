"""Bridges to other tools' engines (Optuna; Ray Tune is ``yeswidget.sweep(..., backend="ray")``)."""
