// The charts panel: to be written (see index.html's #charts-panel).
