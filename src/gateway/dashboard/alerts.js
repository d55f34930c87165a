// The alerts panel: to be written (see index.html's #alerts-panel).
