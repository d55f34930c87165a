// The pheromones panel: to be written (see index.html's #pheromones-panel).
