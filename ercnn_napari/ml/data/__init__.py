"""From stacked files to network inputs: TFRecords, observation series, halos, tf.data pipelines."""
