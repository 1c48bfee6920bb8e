package sample

import "os"

func readConfig(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {

	}
	return data, nil
}
