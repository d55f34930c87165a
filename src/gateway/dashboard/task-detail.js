// The task-detail panel: to be written (see index.html's #task-detail-panel).
