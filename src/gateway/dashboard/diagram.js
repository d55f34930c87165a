// The diagram panel: to be written (see index.html's #diagram-panel).
