// A generated object together with the reasons for its less obvious fields. The reasons are
// rendered as YAML comments above those fields, so deploy/mncni.yaml explains itself.
import type { KubernetesObject } from "@kubernetes/client-node";

export interface Note {
  /** Path of the field inside the object, e.g. ["spec", "updateStrategy"]. */
  path: (string | number)[];
  text: string;
}

export interface Explained<T extends KubernetesObject = KubernetesObject> {
  object: T;
  notes: Note[];
}

export const plain = <T extends KubernetesObject>(object: T): Explained<T> => ({ object, notes: [] });
