// The benchmark workers' message loop: {type, id, ...} -> handlers[type](data), replied as
// {id, value} or {id, error}.
export function serve(handlers) {
  self.onmessage = async ({ data }) => {
    try {
      const value = await handlers[data.type](data);
      self.postMessage({ id: data.id, value });
    } catch (err) {
      self.postMessage({ id: data.id, error: String(err?.stack ?? err) });
    }
  };
}
