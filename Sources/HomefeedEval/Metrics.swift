// Offline evaluation: ranking metrics, holdout splits and the replay of served lists (issue 3; being built).
