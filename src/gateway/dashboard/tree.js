// The tree panel: to be written (see index.html's #tree-panel).
